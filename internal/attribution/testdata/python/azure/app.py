"""Signs blob URLs with azure-storage-blob for as many seconds as its argument says."""

import sys
import time
from datetime import datetime, timedelta, timezone

from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

ACCOUNT = "devstoreaccount1"
KEY = "ZXZpZGVudCB0ZXN0IGtleTogbm90IGEgc2VjcmV0IG9mIGFueSBhY2NvdW50"


def sign(service, name):
    sas = generate_blob_sas(ACCOUNT, "orders", name, account_key=KEY,
                            permission=BlobSasPermissions(read=True),
                            expiry=datetime(2030, 1, 1, tzinfo=timezone.utc))
    return service.get_blob_client("orders", name).url + "?" + sas


def main():
    until = time.monotonic() + float(sys.argv[1])
    service = BlobServiceClient(f"http://127.0.0.1:10000/{ACCOUNT}", credential=KEY)
    n = 0
    while time.monotonic() < until:
        n += len(sign(service, f"order-{n}.json"))
    print(n)


if __name__ == "__main__":
    main()
