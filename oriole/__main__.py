from oriole.cli import main

main()
