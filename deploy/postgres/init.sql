-- The spend ledger's database, beside Temporal's (the worker creates its table on first use).
CREATE DATABASE switchyard;
