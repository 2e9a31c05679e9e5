"""Runs the order service for argv[1] seconds."""

import sys
import time

import jwt

from orders import service


def main(seconds):
    token = jwt.encode({"sub": "ada"}, service.KEY, algorithm="HS256")
    until = time.monotonic() + seconds
    n = 0
    while time.monotonic() < until:
        n += service.handle(token)
    print(n)


if __name__ == "__main__":
    main(float(sys.argv[1]))
