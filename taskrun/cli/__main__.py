from taskrun.cli.main import entry

entry()
