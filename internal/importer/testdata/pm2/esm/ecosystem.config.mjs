// An ES module ecosystem file (PM2 5.3+ reads these too).
const common = { autorestart: true, max_restarts: 3, exp_backoff_restart_delay: 100 };

export default {
  apps: [
    { ...common, name: 'bot', script: 'bot.mjs', env: { TOKEN_FILE: '/run/secrets/bot' } },
    { ...common, name: 'web', script: 'npm', args: 'run start -- --host 127.0.0.1', stop_exit_codes: [0] },
  ],
};
