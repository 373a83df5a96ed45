from tokenradar.cli import main

raise SystemExit(main())
