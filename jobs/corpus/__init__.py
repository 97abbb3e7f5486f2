"""The corpus store: Apache Iceberg tables ``features`` and ``labels`` through pyiceberg.

One concept per module: ``catalog`` (which catalog, which tables), ``schema`` (the tables' types),
``tags`` (what "the corpus as of D" is), ``extraction`` (the one adapter to the extraction job),
``hashing``, ``antijoin``, ``commit`` and ``labels`` (the pieces of a night), ``night`` (the night
itself, on Spark or the local engine), ``local_night`` (its extraction in the local engine's pool),
``read`` (reading as of a date), ``maintenance`` and ``cli``. Only ``night``, ``hashing`` and
``extraction`` touch Spark; the rest runs anywhere pyiceberg does (an Airflow task).
"""
