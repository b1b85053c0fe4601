-- name: sensitive_columns_exposed
-- title: Sensitive Columns Exposed
-- level: ERROR
-- categories: SECURITY
-- requires: api_roles
-- description: Tables readable through the API without row level security that hold columns named like secrets or personal data (password, token, ssn, credit_card, ...).
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0023_sensitive_columns_exposed
WITH sensitive(word) AS (
    SELECT unnest(ARRAY[
        -- credentials
        'password', 'passwd', 'pwd', 'passphrase', 'secret', 'secret_key', 'private_key', 'api_key', 'apikey',
        'auth_key', 'token', 'jwt', 'access_token', 'refresh_token', 'oauth_token', 'session_token', 'bearer_token',
        'auth_code', 'session_id', 'session_key', 'session_secret', 'recovery_code', 'backup_code',
        'verification_code', 'otp', 'two_factor', '2fa_secret', '2fa_code',
        -- identity documents
        'ssn', 'social_security', 'social_security_number', 'driver_license', 'drivers_license', 'license_number',
        'passport_number', 'passport_id', 'national_id', 'tax_id',
        -- money
        'credit_card', 'card_number', 'cvv', 'cvc', 'cvn', 'bank_account', 'account_number', 'routing_number',
        'iban', 'swift_code', 'bic',
        -- health
        'health_record', 'medical_record', 'patient_id', 'insurance_number', 'health_insurance',
        'medical_insurance', 'treatment',
        -- devices, keys, biometrics
        'mac_address', 'macaddr', 'imei', 'device_uuid', 'pgp_key', 'gpg_key', 'ssh_key', 'certificate',
        'license_key', 'activation_key', 'facial_recognition'])
), hits AS (
    SELECT n.nspname, c.relname, a.attname, s.word
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN sensitive s ON s.word = replace(lower(a.attname), '-', '_')
    WHERE c.relkind = 'r' AND NOT c.relrowsecurity
      AND n.nspname IN (SELECT nspname FROM exposed)
      AND (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT') OR pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
)
SELECT format('Table `%s.%s` is exposed via API without RLS and contains potentially sensitive column(s): %s. This may lead to data exposure.',
              nspname, relname, string_agg(attname, ', ' ORDER BY attname)) AS detail,
       jsonb_build_object('schema', nspname, 'name', relname, 'type', 'table',
                          'sensitive_columns', to_jsonb(array_agg(attname ORDER BY attname)),
                          'matched_patterns', to_jsonb(array_agg(DISTINCT word))) AS metadata,
       format('sensitive_columns_exposed_%s_%s', nspname, relname) AS cache_key
FROM hits
GROUP BY nspname, relname
ORDER BY nspname, relname
