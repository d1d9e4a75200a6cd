from orderbridge.cli.main import run

run()
