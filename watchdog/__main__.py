from watchdog.cli.main import main

main()
