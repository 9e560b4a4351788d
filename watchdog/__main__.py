from watchdog.cli import main

main()
