"""The `webhook` transport's routes (§8.1): the signed inbound route and the sites admin API."""
