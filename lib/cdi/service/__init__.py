"""The customer service desk: an HTTP API and web pages over the lake, with no Spark per request."""
