-- The transactions of one job (view engine: DuckDB), in time order; with an empty
-- {{ filters }} every job × transaction row (the export), by job then time.
-- example filters: JOBID = 'a'
SELECT * FROM dataset
WHERE {{ filters }}
ORDER BY CREATEDATE, JOBID, TXNDATE, JOBTXNHISTORYID
