"""Order handling: parse an order document, render its receipt."""

import jinja2
import jwt
import requests
import yaml

DOC = """
id: 42
customer: {name: Ada, email: ada@example.com}
items:
  - {sku: a-1, qty: 2}
  - {sku: b-7, qty: 1}
"""

RECEIPT = jinja2.Environment(autoescape=True).from_string(
    "<p {{ attrs|xmlattr }}>Order {{ o.id }}: {% for i in o['items'] %}{{ i.sku }} x{{ i.qty }}; {% endfor %}</p>"
)

KEY = "not-a-secret"


def handle(token):
    claims = jwt.decode(token, KEY, algorithms=["HS256"])
    order = yaml.load(DOC, Loader=yaml.FullLoader)
    req = requests.Request("POST", "http://orders.internal/receipts", json=order, headers={"X-User": claims["sub"]}).prepare()
    return len(RECEIPT.render(o=order, attrs={"class": "receipt", "data-user": claims["sub"]})) + len(req.body)
