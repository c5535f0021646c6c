"""The demo: commands that load the demo city (fixtures/democity.py) and its history
(fixtures/demohistory.py), print the demo logins and simulate a city's day. Nothing in the
platform imports it; leave it out of INSTALLED_APPS and no demo command exists."""
