from scopegate.cli import main

main()
