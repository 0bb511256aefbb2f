package service

import "os"

// PythonUnbuffered is the variable corral adds to every service's
// environment, unless corral's own environment has it: Python buffers its
// stdout in 8 KiB blocks when it is a pipe, so a program that prints its
// ready line without flushing (A1111's webui.bat runs python launch.py
// without -u) shows nothing until the buffer fills, and a log readiness
// probe never matches. It is added to every service, not only to those
// that look like Python: the program is often a shell script or a .bat
// that starts Python, and no other program reads the variable. The
// service's env (or env_file) wins over it: PYTHONUNBUFFERED = "" (empty:
// off for Python) turns it off.
const PythonUnbuffered = "PYTHONUNBUFFERED"

// withPythonUnbuffered returns env (corral's own environment) with
// PYTHONUNBUFFERED=1 appended unless corral's environment sets it.
func withPythonUnbuffered(env []string) []string {
	if _, set := os.LookupEnv(PythonUnbuffered); set {
		return env
	}
	return append(env, PythonUnbuffered+"=1")
}
