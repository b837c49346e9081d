from faultlab.cli import main

raise SystemExit(main())
