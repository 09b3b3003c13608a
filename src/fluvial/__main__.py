from fluvial.cli.main import main

main()
