"""`python -m order_app` is `order-app`."""

from order_app.cli import main

main()
