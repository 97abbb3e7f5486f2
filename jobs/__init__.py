"""binfeat's Spark jobs and command line: listing, planning, the extraction job, S3 access."""
