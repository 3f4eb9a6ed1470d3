from tokenomy.cli.main import main

main()
