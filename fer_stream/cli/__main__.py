import sys

from fer_stream.cli import main

sys.exit(main())
