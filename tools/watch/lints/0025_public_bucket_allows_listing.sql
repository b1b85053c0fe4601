-- name: public_bucket_allows_listing
-- title: Public Bucket Allows Listing
-- level: WARN
-- categories: SECURITY
-- requires: storage
-- description: Public buckets serve files by URL without any policy; a broad SELECT policy on storage.objects for them also lets clients list every file in the bucket.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0025_public_bucket_allows_listing
WITH broad AS (
    SELECT b.id AS bucket_id, b.name AS bucket_name, p.polname
    FROM storage.buckets b
    JOIN pg_catalog.pg_policy p ON p.polrelid = 'storage.objects'::regclass
    WHERE b.public
      AND p.polpermissive AND p.polcmd IN ('r', '*')
      AND (p.polroles = '{0}'::oid[]
           OR EXISTS (SELECT FROM unnest(p.polroles) AS r WHERE r::regrole::text IN ('anon', 'authenticated')))
      AND (p.polqual IS NULL
           OR regexp_replace(lower(pg_catalog.pg_get_expr(p.polqual, p.polrelid)), '\s', '', 'g')
              IN ('true', '(true)', '(1=1)', '1=1')
           -- nothing but "bucket_id = '<this bucket>'": every object of the bucket
           OR regexp_replace(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '[\s()]', '', 'g')
              = regexp_replace(format('bucket_id = %L::text', b.id), '[\s()]', '', 'g'))
)
SELECT format('Public bucket `%s` has a broad SELECT policy on `storage.objects` (%s) that allows clients to list all files. Public buckets do not need it to serve files by URL.',
              bucket_id, string_agg(polname, ', ' ORDER BY polname)) AS detail,
       jsonb_build_object('schema', 'storage', 'name', bucket_name, 'type', 'bucket', 'bucket_id', bucket_id,
                          'policies', to_jsonb(array_agg(polname ORDER BY polname))) AS metadata,
       format('public_bucket_allows_listing_%s', bucket_id) AS cache_key
FROM broad
GROUP BY bucket_id, bucket_name
ORDER BY bucket_id
