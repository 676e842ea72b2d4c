CREATE TABLE app.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES app.customers (id),
    total_cents bigint NOT NULL CHECK (total_cents >= 0),
    token text NOT NULL DEFAULT encode(public.gen_random_bytes(16), 'hex'),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_id ON app.orders (customer_id);
