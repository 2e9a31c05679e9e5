"""A small order service that reads YAML orders and renders receipts."""
