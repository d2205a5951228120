import sys

from switchyard.cli.main import main

sys.exit(main())
