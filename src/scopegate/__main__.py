from scopegate.cli.main import main

main()
