"""PostgreSQL: the event archive, the projections derived from it, migrations and replay.

``store`` writes batches (archive + projections in one transaction), ``projector`` feeds it
from Kafka, ``rows`` is the pure event -> row mapping, ``database`` finds or starts the
server, ``migrate`` keeps the schema, ``replay_source`` streams archived runs back to Kafka.
"""
