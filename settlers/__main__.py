from settlers.cli import main

main()
