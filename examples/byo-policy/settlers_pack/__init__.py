"""pack: a placement policy kept outside the testbed, found through its entry point."""
