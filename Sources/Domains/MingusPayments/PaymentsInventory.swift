public import MingusRuntime

extension DataTable {
    /// The payments domain's tables.
    static let payments: [DataTable] = [
        DataTable("payment_data", "Card payments: amounts, outcome, the card's token and masked number",
                  categories: [.cardholder, .financial, .personal], lawfulBasis: .contract, retention: .policies(["payment"]))
            .columns(.internal, "transaction_id status processor created_at updated_at authorized_at retention_until")
            .columns(.confidential, "merchant_id amount currency card_brand authorization_code decline_code failure_reason metadata callback_url requested_by")
            .columns(.restricted, "expiry_month expiry_year")
            .column("card_token", .restricted, .tokenized)
            .column("masked_pan", .restricted, .masked),
        DataTable("card_tokens", "The token vault: each card number encrypted once, under its token",
                  categories: [.cardholder], lawfulBasis: .contract, retention: .policies(["card_token"]))
            .columns(.internal, "fingerprint_version pan_key_version created_at")
            .columns(.confidential, "card_brand")
            .column("token", .restricted, .tokenized)
            .column("fingerprint", .restricted, .keyedHash(.fingerprint))
            .column("pan_ciphertext", .highlyRestricted, .encrypted(.pan))
            .column("masked_pan", .restricted, .masked),
        DataTable("financial_records", "Users' financial records (statements, tax documents, loans…), contents encrypted",
                  categories: [.financial, .personal], lawfulBasis: .legalObligation,
                  retention: .policies(["transaction", "statement", "tax_document", "loan", "investment", "account_profile", "health_expense"]))
            .columns(.internal, "record_id record_type classification compliance_standard content_key_version created_at retention_until legal_hold")
            .columns(.confidential, "user_id requested_by")
            .column("content_ciphertext", .highlyRestricted, .encrypted(.records)),
        DataTable("payment_hourly_rollups", "Payments per hour, outcome, currency and latency bucket, kept by a trigger on payment_data",
                  categories: [.financial, .operational], retention: .unbounded("hourly counts are not pruned yet"))
            .columns(.internal, "hour shard status currency latency_bucket payments latency_ms_sum latency_ms_max")
            .columns(.confidential, "amount"),
    ]
}
