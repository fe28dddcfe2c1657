from adapters.cli.main import main

main()
