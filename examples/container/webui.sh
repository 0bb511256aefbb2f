#!/bin/sh
# The launcher stays alive as the tree's root, as webui.sh and cmd.exe do:
# stopping only the python process would leave it (and the workers) behind.
python3 "$(dirname "$0")/fake_webui.py" "$@"
