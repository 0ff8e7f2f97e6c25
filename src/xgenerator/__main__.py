from xgenerator.cli import main

main()
