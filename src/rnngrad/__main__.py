from rnngrad.cli import main

main()
