// Boost.Asio (and its SSL part) compiled once for the test binary
// (BOOST_ASIO_SEPARATE_COMPILATION; strata compiles it in broker/net/asio.cpp).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
