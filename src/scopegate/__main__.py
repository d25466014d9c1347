from scopegate.cli.app import main

main()
