//! DynamoDB store.
