"""PyInstaller's entry script: the frozen executable runs the same code as the console scripts.

One file serves two names: `kubectl-waypoint` (the plugin) and `kubectl_complete-waypoint` (kubectl's
completion hook), so a symlink with the second name is all shell completion needs.
"""

import os
import sys

if os.path.basename(sys.argv[0]).split(".")[0] == "kubectl_complete-waypoint":
    from kubectl_waypoint.completion import main
else:
    from kubectl_waypoint.__main__ import main

sys.exit(main())
