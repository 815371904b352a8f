from render_summary.cli import main

raise SystemExit(main())
