from xgenerator.cli.main import main

main()
