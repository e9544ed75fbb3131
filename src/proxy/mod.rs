//! The HDInsight Kafka REST proxy client.
