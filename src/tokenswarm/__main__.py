from tokenswarm.cli import main

main()
