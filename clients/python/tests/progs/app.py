"""An application that launches corral tethered to itself, ensures its
service, reports the pids, then waits to be killed (the crash test)."""
import json
import os
import sys

sys.path.insert(0, sys.argv[3])
from corral import Corral  # noqa: E402

config, corral_bin = sys.argv[1], sys.argv[2]
c = Corral.launch(config, exit_with=os.getpid(), corral=corral_bin, ensure=["tree"], ensure_timeout=30)
s = c.status("tree")
print(json.dumps({"daemon": c.pid, "members": [p.pid for p in s.members], "instance": s.instance}), flush=True)
sys.stdin.read()  # until killed (or stdin closes)
c.shutdown()
print("clean exit", flush=True)
