-- Product search: a full-text document per product (name, description, category and type names, English
-- stemming) beside its description embedding, with the model that produced the embedding, and the indexes both
-- halves of hybrid search use. The table is shared reference data like the products themselves.
ALTER TABLE retail.product_description_embeddings
    ADD COLUMN embedding_model TEXT,
    ADD COLUMN search_document TSVECTOR;
COMMENT ON TABLE retail.product_description_embeddings IS 'Search data per product: description embedding and full-text document';
COMMENT ON COLUMN retail.product_description_embeddings.embedding_model IS 'Model that produced description_embedding';
CREATE INDEX idx_product_search_document ON retail.product_description_embeddings USING gin (search_document);
CREATE INDEX idx_product_description_embedding_hnsw ON retail.product_description_embeddings
    USING hnsw (description_embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);
