"""The relay: durable store, ingest and the websocket stream serving `hook listen`."""
