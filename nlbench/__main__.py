from nlbench.cli import console_main

console_main()
