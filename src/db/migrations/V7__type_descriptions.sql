-- What each product type is for, in a shopper's words ("wire nuts", "cut curves in plywood"). Product names and
-- descriptions say what an item is; the type description says which jobs the aisle serves, which is how store
-- managers ask. It goes into every product's embedded text and full-text document, and the model can read it.
ALTER TABLE retail.product_types ADD COLUMN type_description TEXT;
COMMENT ON COLUMN retail.product_types.type_description IS 'What the type is for, in everyday words';

-- The SHA-256 of the exact text a product's embedding was computed from. When the text changes (an edited
-- description, a new embedding recipe) the embedding is stale and is recomputed; unchanged texts are never
-- re-embedded.
ALTER TABLE retail.product_description_embeddings ADD COLUMN embedded_text_sha256 BYTEA;
COMMENT ON COLUMN retail.product_description_embeddings.embedded_text_sha256 IS 'SHA-256 of the text description_embedding was computed from';

-- Keep each description vector inside its row: a search reads every vector, and a vector moved out to the TOAST
-- table costs several extra page reads each. The full-text document, larger and read only through its GIN index,
-- is the one to move out when a row gets too big.
ALTER TABLE retail.product_description_embeddings ALTER COLUMN description_embedding SET STORAGE MAIN;
