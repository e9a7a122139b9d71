"""labrig on the controller: the `labrig` command (labrig/cli.py). The roles and playbooks it runs
live beside this package in the checkout; the suite that runs on the hosts is `verify`."""
