// Package redact owns the removal of secrets from everything corral writes
// for other eyes: every file of a diagnostic bundle (configuration, status,
// events, journal excerpts, logs, command lines, environments) goes through
// File, so one policy holds for all of them instead of one regex per file.
//
// What is redacted (the value is replaced by Mark, the name that says what it
// was is kept, so a bundle still shows that a token was set):
//
//   - values of names that look secret: an environment variable, a JSON or
//     TOML key, a key=value or key: value pair in free text, a command-line
//     flag. A name is split into words (HF_TOKEN, hfToken, --hf-token all
//     give HF and TOKEN) and is secret when a word is, or ends in, TOKEN,
//     KEY, SECRET, PASSWORD, PASSWD, PASSPHRASE, AUTH, CREDENTIAL, COOKIE,
//     or is exactly PASS, PW, PWD, SESSION, PRIVATE, AUTHORIZATION, BEARER,
//     CRED (plurals too, except TOKENS, which in ML tools counts tokens:
//     --max-tokens 512). Words are compared whole, so --keep-alive,
//     --tokenizer, AUTHOR, KEYBOARD and --autolaunch are not secret. A name
//     whose last word says the value is not the secret itself (PATH, FILE,
//     DIR, NAME, URL, HOST, PORT, TIMEOUT, COUNT, SIZE, TYPE, ...) is not
//     secret by name: --gradio-auth-path is a path, not a password, and
//     --password-file names a file. Flags starting with no-, disable- or
//     skip- are switches. PWD and OLDPWD alone are the working directory.
//   - flag values in both forms, --flag=value and --flag value, in argv
//     arrays and in command strings (shell = "...", COMMANDLINE_ARGS, log
//     lines, "%q" lists); in the space form the next word is the value
//     unless it starts with "--", so a password that begins with "-" is
//     still caught. --ngrok (A1111: its value is an ngrok auth token) too.
//     An unquoted value ends at white space or at a quote that closes a
//     string around it (shell = "bash webui.sh --hf-token X").
//   - user:password@ in URLs (the user is kept), a token-looking user@ alone,
//     the rest of the line after Authorization, Proxy-Authorization, Cookie,
//     Set-Cookie and X-Api-Key (the scheme is kept: "Bearer [redacted]"), a
//     bare "Bearer xyz", the body of PEM private key blocks;
//   - well-known token shapes anywhere, whatever their name: sk-, sk_live_,
//     rk_live_, hf_, ghp_/gho_/ghu_/ghs_/ghr_, github_pat_, glpat-, xox?-,
//     xapp-, AKIA/ASIA access key ids, AIza, npm_, pypi-, r8_, and JWTs. A
//     prefix counts only at the start of a word, so "task-sk-..." or
//     "risk-assessment" are left alone.
//   - environment values whatever their name (CIVITAI=..., and NAME=value
//     assignments in upper case in free text) when they look like a token:
//     a run of 16 or more letters and digits with digits in it (or, without
//     digits, at least 20 with frequent case changes) and an entropy of at
//     least 2 bits per character. Token-looking words elsewhere in free
//     text are not redacted by shape alone: logs and statuses are full of
//     hashes (commits, model checksums, instance ids) that a reader needs.
//
// What is not redacted, on purpose: ports, paths, boolean switches, hashes
// in free text, short values of harmless names (CIVITAI=abc), single-letter
// flags (curl -u user:pass: the letter says nothing), and passwords written
// in prose ("the password is x"). Redaction is best effort over text it
// does not understand; the structured forms (argv, env, JSON, TOML) are
// where it is exact.
//
// JSON and TOML are decoded, redacted value by value and encoded again, so
// the output stays valid; the TOML copy loses its comments and layout and
// says so in its first line. Input that does not parse is redacted as text.
// Every rule of String reads the original text and the union of what they
// find is replaced, so one rule cannot hide from another the name that
// marks a value as secret; redacting twice changes nothing.
package redact
