from ftmoe.cli import main

raise SystemExit(main())
