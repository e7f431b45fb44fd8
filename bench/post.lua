-- wrk: POSTs the JSON in $BODY to the URL's path, the same body each time.
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
