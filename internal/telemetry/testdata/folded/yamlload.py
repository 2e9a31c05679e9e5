import time

import yaml

DOC = "rows:\n" + "".join(f"  - {{name: item {i}, total: {i * 7}}}\n" for i in range(40))


def main():
    t = time.time()
    while time.time() - t < 0.3:
        yaml.safe_load(DOC)


main()
